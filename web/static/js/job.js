// While a job is PENDING or RUNNING, poll its status and move the progress bar;
// when it finishes, reload once so the page shows its results (or its error).
(function () {
  "use strict";
  const job = document.getElementById("job");
  if (!job || job.dataset.active !== "true") return;
  const bar = document.getElementById("job-progress");
  const badge = document.querySelector("#job-status .badge");

  function show(progress) {
    if (!bar) return;
    bar.style.width = progress + "%";
    bar.textContent = progress + "%";
    bar.parentElement.setAttribute("aria-valuenow", progress);
  }

  async function poll() {
    try {
      // Not following redirects: a session that has ended answers with one to the login,
      // which a poll would follow in the background every second (each starting a login of
      // its own). Reloading shows the login instead, which comes back to this page after it.
      const response = await fetch(job.dataset.statusUrl, {
        headers: { Accept: "application/json" },
        redirect: "manual",
      });
      if (response.type === "opaqueredirect") { window.location.reload(); return; }
      if (response.ok) {
        const status = await response.json();
        if (!status.active) { window.location.reload(); return; }
        badge.textContent = status.job_status;
        badge.dataset.status = status.job_status;
        show(status.progress);
      }
    } catch (error) {
      // A network blip: the next poll tries again.
    }
    setTimeout(poll, 1000);
  }

  show(Number(bar ? bar.dataset.progress : 0));
  setTimeout(poll, 1000);
})();
