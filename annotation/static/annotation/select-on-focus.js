// Inputs marked data-select-on-focus (a link to copy) select their whole value when focused.
(function () {
  "use strict";
  for (const input of document.querySelectorAll("input[data-select-on-focus]")) {
    input.addEventListener("focus", () => input.select());
  }
})();
