// Pure helpers that spell an answer out as text: for the status line, the model suggestion, the review table.

const isSpan = (v) => !!v && typeof v === 'object'

/**
 * What an answer reads as on the label page: a label, labels joined by commas, or spans with the text they
 * cover (`PER "Ada"`). Span offsets are characters (code points), as the server counts them.
 */
export function describeValue(value, text) {
  if (!Array.isArray(value)) return String(value)
  if (!value.length) return 'nothing'
  const chars = Array.from(text || '')
  return value.map((v) => (isSpan(v) ? `${v.label} "${chars.slice(v.start, v.end).join('')}"` : v)).join(', ')
}

/**
 * The model suggestion of a task as text, '' when there is none. Two shapes reach the page: `preannotate`
 * stores the model's record {label, confidence, scores, model}; an import stores the cleaned value itself
 * (a label name, a list of names, or a list of spans).
 */
export function suggestionText(prediction, text) {
  if (prediction === null || prediction === undefined) return ''
  const isRecord = typeof prediction === 'object' && !Array.isArray(prediction)
  const value = isRecord ? (prediction.label ?? prediction.labels ?? prediction.value) : prediction
  if (value === null || value === undefined) return ''
  const shown = describeValue(value, text)
  return isRecord && typeof prediction.confidence === 'number'
    ? `${shown} (${Math.round(prediction.confidence * 100)}%)`
    : shown
}

/**
 * What an annotator's answer reads as on the review page: spans with the words they cover and their
 * offsets (`PER "Ada" [2, 5)`), so two answers that differ by a word can be told apart.
 */
export function answerText(value, text) {
  if (!Array.isArray(value)) return String(value)
  if (!value.length) return '(none)'
  const chars = Array.from(text || '')
  const span = (v) => `${v.label} "${chars.slice(v.start, v.end).join('')}" [${v.start}, ${v.end})`
  return value.map((v) => (isSpan(v) ? span(v) : v)).join(', ')
}
