// The sidebar buttons on a phone and the sidebar's collapse on a laptop (pydata-sphinx-theme issue 2451).
// pydata-sphinx-theme (>= 0.17) and sphinx-book-theme attach their handlers to the FIRST `.primary-toggle` and
// `.secondary-toggle` of the page (document.querySelector): the header's buttons, which sphinx-book-theme hides.
// The buttons a reader sees, in the article's header, get none. Each later button passes its click to the first
// one, which runs both themes' own handlers (a drawer on a narrow screen, a collapsed sidebar on a wide one).
document.addEventListener("DOMContentLoaded", () => {
  for (const selector of [".primary-toggle", ".secondary-toggle"]) {
    const [first, ...others] = document.querySelectorAll(selector);
    for (const button of others) {
      button.addEventListener("click", (event) => {
        event.preventDefault();
        event.stopPropagation();
        first.click();
      });
    }
  }
});

// A figure in a cell's output opens at full size, in a tab of its own, when clicked.
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("div.cell_output img")) {
    if (img.closest("a")) continue;
    const link = document.createElement("a");
    link.href = img.src;
    link.target = "_blank";
    link.className = "course-full-size";
    link.title = "Open the figure at full size";
    img.replaceWith(link);
    link.appendChild(img);
  }
});

// Search snippets come from the lesson's text, not from the theme's buttons above it ("System Settings Light Dark"):
// Sphinx's search reads a page's role="main" element, which in this theme holds the article's header too.
// searchtools.js loads after this file; the snippets are read once the search has fetched each page, later still.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof Search === "undefined" || !Search.htmlToText) return;
  const fromMain = Search.htmlToText;
  Search.htmlToText = (htmlString, anchor) => {
    const page = new DOMParser().parseFromString(htmlString, "text/html");
    const article = page.querySelector("article.bd-article");
    if (!article) return fromMain(htmlString, anchor);
    article.querySelectorAll(".headerlink, script, style").forEach((element) => element.remove());
    const part = anchor ? article.querySelector(anchor) : null;
    return (part || article).textContent;
  };
});

// On a phone, choosing a section in the page-contents drawer closes the drawer, so that the section shows.
document.addEventListener("DOMContentLoaded", () => {
  for (const drawer of document.querySelectorAll("#pst-primary-sidebar-modal, #pst-secondary-sidebar-modal")) {
    drawer.addEventListener("click", (event) => {
      if (event.target.closest("a[href]")) drawer.close();
    });
  }
});
