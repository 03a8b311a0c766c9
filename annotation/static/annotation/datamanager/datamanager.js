// The data manager's table: select a page (or every matching task), and show the bulk bar's fields for the action
// chosen. Without this script the page still works: every field shows and the checkboxes are plain form inputs.
(function () {
  "use strict";
  const form = document.getElementById("bulk-form");
  if (!form) return;
  const all = document.getElementById("select-page");
  const scope = document.getElementById("scope-filter");
  const action = document.getElementById("bulk-action");
  const count = document.getElementById("selected-count");
  const rows = () => Array.from(document.querySelectorAll("input.row-check"));

  function update() {
    const checks = rows();
    const picked = checks.filter((c) => c.checked).length;
    checks.forEach((c) => { c.disabled = scope.checked; });
    if (all) {
      all.disabled = scope.checked;
      all.checked = checks.length > 0 && picked === checks.length;
      all.indeterminate = picked > 0 && picked < checks.length;
    }
    count.textContent = scope.checked ? "every matching task selected" : picked + " selected";
  }

  function showFields() {
    form.querySelectorAll("[data-for-action]").forEach((el) => {
      el.hidden = el.dataset.forAction !== action.value;
    });
  }

  if (all) all.addEventListener("change", () => { rows().forEach((c) => { c.checked = all.checked; }); update(); });
  rows().forEach((c) => c.addEventListener("change", update));
  scope.addEventListener("change", update);
  action.addEventListener("change", showFields);
  form.addEventListener("submit", (event) => {
    if (action.value === "remove_unlabelled" && !window.confirm("Remove the unlabelled tasks of the selection?")) {
      event.preventDefault();
    }
  });
  update();
  showFields();
})();
