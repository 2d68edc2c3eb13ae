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
