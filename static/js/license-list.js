// My licenses: the header checkbox selects every license on this page. Without JavaScript it
// stays hidden and each row is selected by hand ("all matching the filters" needs no script).
document.querySelectorAll("[data-select-page]").forEach((all) => {
  const table = all.closest("table");
  const rows = () => Array.from(table.querySelectorAll("[data-row-select]"));
  const sync = () => {
    const checked = rows().filter((box) => box.checked).length;
    all.checked = checked > 0 && checked === rows().length;
    all.indeterminate = checked > 0 && checked < rows().length;
  };
  all.classList.remove("d-none");
  all.addEventListener("change", () => {
    rows().forEach((box) => { box.checked = all.checked; });
  });
  table.addEventListener("change", (event) => {
    if (event.target.matches("[data-row-select]")) sync();
  });
  sync();
});
