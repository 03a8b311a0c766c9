// Pure helpers of the grid of thumbnails: moving through it with the arrow keys, and the selection.

const STEPS = { ArrowLeft: () => -1, ArrowRight: () => 1, ArrowUp: (c) => -c, ArrowDown: (c) => c }

/**
 * Where the cursor at `index` lands after an arrow key in a grid of `count` thumbnails in rows of `columns`;
 * it stops at the edges (no wrapping: the last row may be short). -1 when the grid is empty.
 */
export function gridMove(index, key, count, columns) {
  if (count <= 0) return -1
  const step = STEPS[key] ? STEPS[key](Math.max(1, columns)) : 0
  const next = Math.max(index, 0) + step
  return next < 0 || next >= count ? Math.max(index, 0) : next
}

/** The indices from `a` to `b`, both included, in order: a Shift-extended selection. */
export function between(a, b) {
  const lo = Math.min(a, b)
  return Array.from({ length: Math.abs(a - b) + 1 }, (_, i) => lo + i)
}

/** How many thumbnails share the first one's row: the grid's columns, read from their positions. */
export function columnsOf(tops) {
  if (!tops.length) return 1
  const first = tops.filter((top) => top === tops[0]).length
  return Math.max(1, first)
}
