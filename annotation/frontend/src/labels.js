// Pure helpers for a project's list of labels: a cursor moving through it, a multi-label choice, colours.

/**
 * Where a cursor at `index` lands after moving `step` (+1 or -1) through `count` choices, wrapping round;
 * from no choice (-1) it lands on the first or the last. -1 when there is nothing to choose.
 */
export function cycle(index, step, count) {
  if (count <= 0) return -1
  if (index < 0) return step > 0 ? 0 : count - 1
  return (index + step + count) % count
}

/** A new Set: `chosen` with `name` added, or removed if it was there. */
export function toggled(chosen, name) {
  const next = new Set(chosen)
  if (next.has(name)) next.delete(name)
  else next.add(name)
  return next
}

/** The names of `labels` that are in `chosen`, in the project's label order (the order answers are saved in). */
export function inLabelOrder(labels, chosen) {
  return labels.filter((name) => chosen.has(name))
}

/** The colour class of the label at `index` (eight colours, repeating); '' for a name not in the list. */
export function colourClass(index) {
  return index >= 0 ? `lab-${index % 8}` : ''
}
