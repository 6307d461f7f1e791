// Portcullis console: copy buttons, dropping a file onto an upload form, and the live
// notifications list. Everything works without JavaScript (a file input, a stored list).
"use strict";
document.addEventListener("click", function (event) {
  var button = event.target.closest("button[data-copy]");
  if (!button) return;
  var source = document.getElementById(button.getAttribute("data-copy"));
  if (!source || !navigator.clipboard) return;
  navigator.clipboard.writeText(source.textContent.trim()).then(function () {
    button.textContent = "Copied";
    button.setAttribute("aria-live", "polite");
    setTimeout(function () { button.textContent = "Copy"; }, 2000);
  });
});

// A drop zone hands the dropped file to its form's file input, so the form sends it.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("[data-drop-for]").forEach(function (zone) {
    var input = document.getElementById(zone.getAttribute("data-drop-for"));
    if (!input) return;
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("over");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }
    });
  });
});
