// My licenses: "select all on this page" (in the table's header, and above the actions on a
// phone, where the header is hidden) ticks every license on this page. Without JavaScript the
// controls stay hidden and rows are ticked one by one ("all matching the filters" needs none).
const pageSelectors = Array.from(document.querySelectorAll("[data-select-page]"));
const rowBoxes = Array.from(document.querySelectorAll("[data-row-select]"));
if (pageSelectors.length && rowBoxes.length) {
  const sync = () => {
    const checked = rowBoxes.filter((box) => box.checked).length;
    pageSelectors.forEach((all) => {
      all.checked = checked === rowBoxes.length;
      all.indeterminate = checked > 0 && checked < rowBoxes.length;
    });
  };
  pageSelectors.forEach((all) => {
    (all.closest("[data-select-page-block]") || all).classList.remove("d-none");
    all.addEventListener("change", () => {
      rowBoxes.forEach((box) => { box.checked = all.checked; });
      sync();
    });
  });
  rowBoxes.forEach((box) => box.addEventListener("change", sync));
  sync();
}
