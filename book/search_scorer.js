// The site's search scores (html_search_scorer in conf.py; Sphinx puts them in language_data.js): Sphinx's own
// weights, except that a module ranks below the functions and classes of the API reference. Searching `grad_cam`
// then finds the function utils.saliency.grad_cam first, not the module utils.exercises.grad_cam (the exercise
// checker named after it), which Sphinx's default weights put first (a module's priority adds 15, a function's 5,
// and a tie goes to the name first in alphabetical order).
var Scorer = {
  score: (result) => {
    const [docname, title, anchor, descr, score] = result;
    return anchor.startsWith("#module-") ? score - 15 : score;
  },
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 },
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};
