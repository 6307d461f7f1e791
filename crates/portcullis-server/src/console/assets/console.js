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

// The notifications page: new ones arrive over Server-Sent Events and are appended.
document.addEventListener("DOMContentLoaded", function () {
  var list = document.querySelector("ul[data-stream]");
  if (!list || !window.EventSource) return;
  var status = document.getElementById("live");
  var source = new EventSource(list.getAttribute("data-stream"));
  source.addEventListener("open", function () {
    status.textContent = "Live: new notifications appear below as they arrive.";
  });
  source.addEventListener("error", function () {
    status.textContent = "The live connection dropped; reconnecting…";
  });
  source.addEventListener("notification", function (event) {
    var n = JSON.parse(event.data);
    var empty = document.getElementById("no-notifications");
    if (empty) empty.remove();
    var item = document.createElement("li");
    item.setAttribute("data-id", String(n.id));
    // Titled by the topic's name (the URI when the notification has none), with the URI
    // beneath to copy, as the page renders the stored ones.
    var title = document.createElement("strong");
    title.className = "topic";
    title.textContent = n.topic_name && n.topic_name.trim() ? n.topic_name : n.topic;
    var copy = document.createElement("div");
    copy.className = "copy";
    var uri = document.createElement("code");
    uri.className = "id";
    uri.id = "topic-" + n.id;
    uri.textContent = n.topic;
    var button = document.createElement("button");
    button.className = "copy";
    button.type = "button";
    button.setAttribute("data-copy", uri.id);
    button.setAttribute("aria-label", "Copy the topic URI");
    button.textContent = "Copy";
    copy.append(uri, button);
    item.append(title, copy);
    var message = document.createElement("p");
    message.textContent = n.message;
    item.append(message);
    if (n.link && /^https?:\/\//.test(n.link)) {
      var p = document.createElement("p");
      var a = document.createElement("a");
      a.href = n.link;
      a.rel = "noopener noreferrer";
      a.textContent = n.link;
      p.append(a);
      item.append(p);
    }
    var when = document.createElement("small");
    when.textContent = new Date(n.created_at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
    item.append(when);
    list.append(item);
  });
});
