// Check the chosen file against the plan's limit before the browser uploads it to S3.
// The server checks again after the upload: this only spares the user a wasted upload.
(function () {
  "use strict";
  const form = document.getElementById("upload-form");
  if (!form) return;
  const input = document.getElementById("file");
  const message = document.getElementById("limit-message");
  const button = document.getElementById("upload-button");
  const maxBytes = Number(form.dataset.maxBytes);

  function check() {
    const file = input.files[0];
    const tooLarge = file && file.size > maxBytes;
    if (tooLarge) {
      const kib = Math.round(file.size / 1024);
      message.textContent = file.name + " is " + kib + " KiB; your plan accepts files up to " +
        form.dataset.limitText + ". Subscribe to premium for larger files.";
    }
    message.classList.toggle("d-none", !tooLarge);
    button.disabled = Boolean(tooLarge);
    return !tooLarge;
  }

  input.addEventListener("change", check);
  form.addEventListener("submit", function (event) {
    // S3 expects the file last; the select comes before it in the form already.
    if (!check()) event.preventDefault();
    else button.disabled = true;
  });
})();
