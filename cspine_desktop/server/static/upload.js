// Upload with a progress bar (plain XMLHttpRequest; no build step).
(function () {
  "use strict";
  var form = document.getElementById("upload");
  var bar = document.getElementById("progress");
  var status = document.getElementById("status");
  if (!form || !window.XMLHttpRequest || !window.FormData) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var data = new FormData(form);
    var xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.setRequestHeader("X-CSRF-Token", data.get("csrf_token"));
    bar.hidden = false;
    bar.value = 0;
    status.textContent = "Uploading…";
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) {
        bar.value = Math.round(100 * e.loaded / e.total);
        status.textContent = "Uploading… " + bar.value + "%";
      }
    });
    xhr.upload.addEventListener("load", function () {
      status.textContent = "Checking the study…";
    });
    xhr.addEventListener("load", function () {
      var body = {};
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = {}; }
      if (xhr.status === 202 && body.url) {
        window.location.assign(body.url);
      } else {
        bar.hidden = true;
        status.textContent = body.error || ("Upload failed (" + xhr.status + ").");
      }
    });
    xhr.addEventListener("error", function () {
      bar.hidden = true;
      status.textContent = "The upload was interrupted; check the connection and try again.";
    });
    xhr.send(data);
  });
})();
