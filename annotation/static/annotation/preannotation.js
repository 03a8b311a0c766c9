// The manager page's pre-annotation section, while a job is queued or running: show each job's progress every
// 1.5 s, and reload the page once none is. The jobs' API address is the script element's data-jobs-url.
(function () {
  "use strict";
  const url = document.currentScript.dataset.jobsUrl;
  const active = (s) => s === "queued" || s === "running";
  const pills = { succeeded: "badge-ok", failed: "badge-err", running: "badge-info" };
  async function poll() {
    const res = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!res.ok) return;
    const jobs = await res.json();
    for (const job of jobs) {
      const row = document.querySelector(`tr[data-job-id="${job.id}"]`);
      if (!row) continue;
      row.dataset.status = job.status;
      const pill = row.querySelector('[data-field="status"]');
      pill.textContent = job.status;
      pill.className = `badge ${pills[job.status] || "badge-warn"}`;
      row.querySelector('[data-field="progress"]').textContent = `${job.done}/${job.total ?? "?"}`;
    }
    if (jobs.some((job) => active(job.status))) setTimeout(poll, 1500);
    else window.location.reload();
  }
  setTimeout(poll, 1500);
})();
