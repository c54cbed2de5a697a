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
      const response = await fetch(job.dataset.statusUrl, { headers: { Accept: "application/json" } });
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
