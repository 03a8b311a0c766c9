// Pure helpers for span labelling: tokens, text segments for highlighting, DOM selection offsets.

// A word: letters, digits and marks, with an apostrophe or hyphen inside it ("don't", "New-York"); anything
// else that is not a space is a token of its own ("Monday." is "Monday" and ".").
const TOKEN = /[\p{L}\p{N}\p{M}]+(?:['’\-][\p{L}\p{N}\p{M}]+)*|[^\s\p{L}\p{N}\p{M}]/gu

/** Tokens of `text` as {start, end} UTF-16 offsets: words, and each punctuation sign on its own. */
export function tokenize(text) {
  const tokens = []
  const re = new RegExp(TOKEN)
  let m
  while ((m = re.exec(text || '')) !== null) tokens.push({ start: m.index, end: m.index + m[0].length })
  return tokens
}

/**
 * Cut `text` at every boundary of the spans, the selection and the cursor, so each segment can carry
 * its own classes. Segments concatenate back to `text` exactly, which keeps DOM offsets = text offsets.
 * `span` is the index of the first span covering a segment (-1 for none); `ending` lists the spans that
 * end with it, so their label names can be shown right after their last word.
 */
export function segments(text, spans, selection, cursor) {
  const cuts = new Set([0, text.length])
  for (const s of spans) { cuts.add(s.start); cuts.add(s.end) }
  for (const r of [selection, cursor]) if (r) { cuts.add(r.start); cuts.add(r.end) }
  const points = [...cuts].filter((p) => p >= 0 && p <= text.length).sort((a, b) => a - b)
  const out = []
  for (let i = 0; i + 1 < points.length; i++) {
    const start = points[i]
    const end = points[i + 1]
    if (start === end) continue
    const covering = spans.findIndex((s) => s.start <= start && end <= s.end)
    out.push({
      start,
      end,
      text: text.slice(start, end),
      span: covering,
      ending: spans.flatMap((s, j) => (s.start <= start && s.end === end ? [j] : [])),
      selected: !!selection && selection.start <= start && end <= selection.end,
      cursor: !!cursor && cursor.start <= start && end <= cursor.end,
    })
  }
  return out
}

/**
 * Character offsets of the current DOM selection inside `root`, trimmed of whitespace; null if none. A collapsed
 * selection (a click) is {start, end} at the same offset when `collapsed` is set, else null.
 */
export function selectionOffsets(root, text, collapsed = false) {
  const sel = window.getSelection()
  if (!root || !sel || sel.rangeCount === 0 || (sel.isCollapsed && !collapsed)) return null
  const range = sel.getRangeAt(0)
  if (!root.contains(range.startContainer) || !root.contains(range.endContainer)) return null
  const offset = (node, off) => {
    const pre = document.createRange()
    pre.selectNodeContents(root)
    pre.setEnd(node, off)
    return pre.toString().length
  }
  let start = offset(range.startContainer, range.startOffset)
  let end = offset(range.endContainer, range.endOffset)
  if (end < start) [start, end] = [end, start]
  if (start === end) return { start, end }
  while (start < end && /\s/.test(text[start])) start++
  while (end > start && /\s/.test(text[end - 1])) end--
  return start < end ? { start, end } : null
}

/**
 * `range` widened to whole tokens: from the start of the first token it touches to the end of the last, so a
 * selection made by mouse that cuts a word takes the word, and one that takes a word's trailing full stop
 * keeps it (the stop is a token). Null when it touches no token.
 */
export function snapToTokens(tokens, range) {
  if (!range) return null
  const inside = tokens.filter((t) => t.start < range.end && range.start < t.end)
  return inside.length ? { start: inside[0].start, end: inside[inside.length - 1].end } : null
}

/** The spans in text order (start, then end, then label), as the server stores them. */
export function inTextOrder(spans) {
  return [...spans].sort((a, b) => a.start - b.start || a.end - b.end || (a.label < b.label ? -1 : a.label > b.label ? 1 : 0))
}

/** The index of the token at or after character `offset` (the last token past the end); -1 with no tokens. */
export function tokenAt(tokens, offset) {
  if (!tokens.length) return -1
  const i = tokens.findIndex((t) => offset < t.end)
  return i < 0 ? tokens.length - 1 : i
}

/** Whether `candidate` overlaps any span (or repeats one exactly). */
export function clashes(spans, candidate, allowOverlap) {
  return spans.some((s) =>
    s.start === candidate.start && s.end === candidate.end && s.label === candidate.label
      ? true
      : !allowOverlap && candidate.start < s.end && s.start < candidate.end,
  )
}

/** Character (code point) offset of a UTF-16 offset in `text`: what the server counts. */
export function toCodePoints(text, utf16Offset) {
  return Array.from((text || '').slice(0, utf16Offset)).length
}

/** UTF-16 offset of a character (code point) offset in `text`: a stored span as the page's strings count. */
export function toUtf16(text, codePointOffset) {
  return Array.from(text || '')
    .slice(0, codePointOffset)
    .join('').length
}
