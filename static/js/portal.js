// Progressive enhancement only: every page works without this file.
document.querySelectorAll("[data-copy]").forEach((button) => {
  if (!navigator.clipboard) return;
  button.classList.remove("d-none");
  button.addEventListener("click", () => {
    const source = document.querySelector(button.dataset.copy);
    navigator.clipboard.writeText(source.dataset.key || source.value || source.textContent.trim()).then(() => {
      const label = button.textContent;
      button.textContent = button.dataset.copied;
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
});

// A choice that takes effect at once (the language): submit on change. The form keeps its
// submit button for browsers without JavaScript (hidden by portal.css when scripts run).
document.querySelectorAll("select[data-submit-on-change]").forEach((select) => {
  select.addEventListener("change", () => {
    if (select.form.requestSubmit) select.form.requestSubmit();
    else select.form.submit();
  });
});

// Print buttons (the license certificate): shown only where printing from a script works.
document.querySelectorAll("[data-print]").forEach((button) => {
  button.classList.remove("d-none");
  button.addEventListener("click", () => window.print());
});

// Wizard steps: focus the first field in error after a refused submit, else the first field,
// so that keyboard and screen-reader users start where the step does.
const FIELDS = "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])";
const visible = (element) => element.getClientRects().length > 0;
document.querySelectorAll("form[data-focus-first]").forEach((form) => {
  const invalid = Array.from(form.querySelectorAll(".is-invalid, [aria-invalid=true]"))
    .map((element) => (element.matches(FIELDS) ? element : element.querySelector(FIELDS)))
    .find((element) => element && visible(element));
  const first = invalid || Array.from(form.querySelectorAll(FIELDS)).find(visible);
  if (first) first.focus();
});

// A table or listing wider than the screen scrolls sideways: make the scroller reachable with the
// keyboard (Tab, then the arrow keys) only while it actually scrolls, so it is no idle tab stop.
const SCROLLERS = ".table-responsive, pre";
const focusableScrollers = () => {
  document.querySelectorAll(SCROLLERS).forEach((scroller) => {
    if (scroller.scrollWidth > scroller.clientWidth || scroller.scrollHeight > scroller.clientHeight) {
      scroller.setAttribute("tabindex", "0");
    } else {
      scroller.removeAttribute("tabindex");
    }
  });
};
focusableScrollers();
window.addEventListener("resize", focusableScrollers);
