// Progressive enhancement only: every page works without this file.
document.querySelectorAll("[data-copy]").forEach((button) => {
  if (!navigator.clipboard) return;
  button.classList.remove("d-none");
  button.addEventListener("click", () => {
    const source = document.querySelector(button.dataset.copy);
    navigator.clipboard.writeText(source.value || source.textContent.trim()).then(() => {
      const label = button.textContent;
      button.textContent = button.dataset.copied;
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  });
});
