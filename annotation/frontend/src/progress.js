// Pure helpers that spell an annotator's progress out, from GET /api/projects/ID/progress/.

/** "12 of 40 done, 3 today, 28 left": the annotator's own tasks (done plus still to hand them). */
export function progressText(p) {
  if (!p) return ''
  const mine = p.done_by_me + p.left_for_me
  return `${p.done_by_me} of ${mine} done, ${p.done_today} today, ${p.left_for_me} left`
}

/** "Project: 120 of 400 tasks finished (30%)", or '' for a project without tasks. */
export function projectText(p) {
  if (!p || !p.project_total) return ''
  const percent = Math.floor((100 * p.project_done) / p.project_total)
  return `Project: ${p.project_done} of ${p.project_total} tasks finished (${percent}%)`
}
