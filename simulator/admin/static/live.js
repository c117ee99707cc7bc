// Optional live refresh: reload the page every few seconds while the box is ticked, unless the
// user is typing into a form. The dashboard works the same without it.
(function () {
  var box = document.getElementById("live");
  if (!box) return;
  box.parentNode.hidden = false;
  box.checked = localStorage.getItem("sandbox-live") === "1";
  box.addEventListener("change", function () { localStorage.setItem("sandbox-live", box.checked ? "1" : "0"); });
  setInterval(function () {
    var typing = document.activeElement && /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
    if (box.checked && !typing) location.reload();
  }, 3000);
})();
