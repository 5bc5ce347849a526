// Chitram's page script: uploads with progress, copy buttons, deleting anonymous uploads
// with the token this browser kept, the gallery's selection and the library's forms.
// Never innerHTML with data: filenames are hostile.
(function () {
  "use strict";
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var TOKEN_KEY = "chitram:delete:";

  // HTMX requests carry the CSRF token like forms do.
  document.body.addEventListener("htmx:configRequest", function (event) {
    event.detail.headers["X-CSRF-Token"] = csrf;
  });

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // ---- upload ----------------------------------------------------------------------
  var form = document.getElementById("upload-form");
  if (form) {
    var input = document.getElementById("file-input");
    var list = document.getElementById("upload-list");
    var maxBytes = parseInt(form.dataset.maxBytes, 10);

    function uploadOne(file) {
      return new Promise(function (resolve) {
        var item = el("li", "upload-item");
        var name = el("span", "upload-name", file.name || "pasted image");
        var bar = el("progress");
        bar.max = 100;
        bar.value = 0;
        bar.setAttribute("aria-label", "Upload progress of " + (file.name || "pasted image"));
        var status = el("span", "upload-status", "Uploading…");
        item.append(name, bar, status);
        list.append(item);
        function fail(message) {
          item.classList.add("failed");
          bar.remove();
          status.textContent = message;
          resolve(null);
        }
        if (file.size > maxBytes) {
          fail("Refused: larger than the " + Math.round(maxBytes / 1048576) + " MB limit.");
          return;
        }
        var body = new FormData();
        body.append("file", file, file.name || "pasted.png");
        var xhr = new XMLHttpRequest();
        xhr.open("POST", "/upload");
        xhr.setRequestHeader("Accept", "application/json");
        xhr.setRequestHeader("X-CSRF-Token", csrf);
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
        });
        xhr.addEventListener("load", function () {
          var data = null;
          try { data = JSON.parse(xhr.responseText); } catch (err) { data = null; }
          if (xhr.status === 201 && data) {
            if (data.delete_token) localStorage.setItem(TOKEN_KEY + data.id, data.delete_token);
            bar.value = 100;
            item.classList.add("done");
            status.textContent = "Uploaded. ";
            var link = el("a", "upload-link", "View " + data.filename);
            link.href = data.page_url;
            status.append(link);
            resolve(data);
          } else {
            var message = data && data.error ? data.error.message : "The server refused it (" + xhr.status + ").";
            fail("Refused: " + message);
            if (xhr.status === 401) {
              // Signed out meanwhile (session ended): never retried anonymously.
              var login = el("a", "upload-link", "Log in again");
              login.href = "/login?next=/";
              status.append(" ", login);
            }
          }
        });
        xhr.addEventListener("error", function () { fail("The upload failed: network error."); });
        xhr.send(body);
      });
    }

    // A few at a time: the server takes at most MAX_UPLOADS_PER_CLIENT (8 by default)
    // uploads at once from one address and answers 429 beyond that.
    var UPLOADS_AT_ONCE = 3;

    function uploadAll(files) {
      files = Array.prototype.slice.call(files);
      if (!files.length) return;
      var results = new Array(files.length);
      var next = 0;
      function uploadNext() {
        if (next >= files.length) return Promise.resolve();
        var index = next++;
        return uploadOne(files[index]).then(function (result) {
          results[index] = result;
          return uploadNext();
        });
      }
      var lanes = [];
      for (var i = 0; i < Math.min(UPLOADS_AT_ONCE, files.length); i++) lanes.push(uploadNext());
      Promise.all(lanes).then(function () {
        var done = results.filter(Boolean);
        if (files.length === 1 && done.length === 1) window.location.assign(done[0].page_url);
        input.value = "";
      });
    }

    input.addEventListener("change", function () { uploadAll(input.files); });
    form.addEventListener("submit", function (e) { e.preventDefault(); uploadAll(input.files); });
    ["dragenter", "dragover"].forEach(function (type) {
      form.addEventListener(type, function (e) { e.preventDefault(); form.classList.add("dragging"); });
    });
    ["dragleave", "drop"].forEach(function (type) {
      form.addEventListener(type, function () { form.classList.remove("dragging"); });
    });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      if (e.dataTransfer) uploadAll(e.dataTransfer.files);
    });
    document.addEventListener("paste", function (e) {
      var files = e.clipboardData ? e.clipboardData.files : [];
      if (files && files.length) { e.preventDefault(); uploadAll(files); }
    });
  }

  // ---- copy buttons ----------------------------------------------------------------
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      var status = document.querySelector(".copy-status");
      var label = field.labels && field.labels[0] ? field.labels[0].textContent : "Text";
      function copied() { if (status) status.textContent = label + " copied."; }
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(copied, function () {
          field.select(); document.execCommand("copy"); copied();
        });
      } else {
        field.select(); document.execCommand("copy"); copied();
      }
    });
  });

  // ---- delete --------------------------------------------------------------------------
  document.querySelectorAll("form[data-confirm]").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (!window.confirm(f.dataset.confirm)) e.preventDefault();
    });
  });
  var page = document.querySelector(".image-page");
  var anonymous = document.getElementById("anonymous-delete");
  if (page && anonymous) {
    var id = page.dataset.imageId;
    var token = localStorage.getItem(TOKEN_KEY + id);
    if (token) {
      anonymous.hidden = false;
      var notYours = document.getElementById("not-yours");
      if (notYours) notYours.hidden = true;
      document.getElementById("anonymous-delete-button").addEventListener("click", function () {
        if (!window.confirm("Delete this image for good?")) return;
        var status = document.querySelector(".delete-status");
        fetch("/api/v1/images/" + encodeURIComponent(id), {
          method: "DELETE",
          headers: { "X-Delete-Token": token },
        }).then(function (response) {
          if (response.status === 204 || response.status === 404) {
            localStorage.removeItem(TOKEN_KEY + id);
            window.location.assign("/?deleted=1");
          } else {
            status.textContent = "The image could not be deleted (" + response.status + ").";
          }
        });
      });
    }
  }
  // ---- the library: selection, albums, expiry --------------------------------------
  // A button that asks first (a form's other buttons do not).
  document.querySelectorAll("button[data-confirm]").forEach(function (button) {
    button.addEventListener("click", function (e) {
      if (!window.confirm(button.dataset.confirm)) e.preventDefault();
    });
  });

  // The gallery's selection: how many are ticked, and the actions need one.
  var bulk = document.getElementById("bulk");
  if (bulk) {
    var count = document.getElementById("bulk-count");
    var hint = count.textContent;
    var update = function () {
      var ticked = document.querySelectorAll('input.tile-check:checked').length;
      count.textContent = ticked ? ticked + (ticked === 1 ? " image selected." : " images selected.") : hint;
      count.classList.toggle("has-selection", ticked > 0);
      bulk.querySelectorAll(".needs-selection").forEach(function (b) { b.disabled = !ticked; });
      bulk.querySelectorAll(".bulk-row").forEach(function (row) { row.hidden = !ticked; });
    };
    document.addEventListener("change", function (e) {
      if (e.target.classList && e.target.classList.contains("tile-check")) update();
    });
    update();
  }

  // "New album…" chosen: its title field shows; an existing album chosen: it hides.
  document.querySelectorAll("select[data-new-album]").forEach(function (select) {
    var title = document.getElementById(select.dataset.newAlbum);
    var sync = function () {
      title.hidden = select.value !== "new";
      title.required = select.value === "new";
    };
    select.addEventListener("change", sync);
    sync();
  });

  // The expiry's date field shows only for "On a date".
  document.querySelectorAll("select[data-date-field]").forEach(function (select) {
    var field = document.getElementById(select.dataset.dateField);
    var sync = function () { field.hidden = select.value !== "date"; };
    select.addEventListener("change", sync);
    sync();
  });
})();
