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

// A refused form, any form on the page (the page reloads at its top, the error may be below the
// fold): focus its first field in error, whose message is read with it (aria-describedby), or the
// error summary (portal/includes/_form_errors.html) when an error is about the whole form, such
// as a wrong password. Wizard steps without errors start at their first field, so that keyboard
// and screen-reader users start where the step does.
const FIELDS = "input:not([type=hidden]):not([disabled]), select:not([disabled]), textarea:not([disabled])";
const INVALID = ".is-invalid, [aria-invalid=true]";
const visible = (element) => element.getClientRects().length > 0;
const fieldsIn = (form, selector) => Array.from(form.querySelectorAll(selector))
  .map((element) => (element.matches(FIELDS) ? element : element.querySelector(FIELDS)))
  .filter((element) => element && visible(element));
const refused = Array.from(document.forms).find((form) => form.querySelector(`${INVALID}, [data-form-errors]`));
if (refused) {
  const summary = refused.querySelector("[data-form-errors]");
  const aboutTheForm = summary && summary.querySelector("[data-form-error-messages]");
  const target = aboutTheForm ? summary : fieldsIn(refused, INVALID)[0] || summary;
  if (target) target.focus();
} else {
  document.querySelectorAll("form[data-focus-first]").forEach((form) => {
    const first = fieldsIn(form, FIELDS)[0];
    if (first) first.focus();
  });
}

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
