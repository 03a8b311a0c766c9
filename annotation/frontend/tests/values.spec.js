import { describe, expect, it } from 'vitest'
import { answerText, describeValue, suggestionText } from '../src/values.js'

describe('describeValue', () => {
  it('spells out a label, a list of labels, and an empty list', () => {
    expect(describeValue('positive', '')).toBe('positive')
    expect(describeValue(['politics', 'sports'], '')).toBe('politics, sports')
    expect(describeValue([], '')).toBe('nothing')
  })

  it('quotes the text of each span, counting offsets in characters', () => {
    const text = '\u{1f9ea} Ada met Bob'
    const spans = [{ start: 2, end: 5, label: 'PER' }, { start: 10, end: 13, label: 'PER' }]
    expect(describeValue(spans, text)).toBe('PER "Ada", PER "Bob"')
  })
})

describe('suggestionText', () => {
  it('is empty when there is no suggestion', () => {
    expect(suggestionText(null, '')).toBe('')
    expect(suggestionText(undefined, '')).toBe('')
    expect(suggestionText({ model: 'm:1' }, '')).toBe('')
  })

  it('shows an imported value as it is', () => {
    expect(suggestionText('neg', '')).toBe('neg')
    expect(suggestionText(['a', 'c'], '')).toBe('a, c')
  })

  it("shows a model's record with its confidence", () => {
    expect(suggestionText({ label: 'pos', confidence: 0.87, scores: { pos: 0.87 }, model: 'm:1' }, '')).toBe('pos (87%)')
    expect(suggestionText({ labels: ['a'] }, '')).toBe('a')
    expect(suggestionText({ value: [{ start: 0, end: 3, label: 'X' }] }, 'abc d')).toBe('X "abc"')
  })
})

describe('answerText', () => {
  it('spells out labels and no answer', () => {
    expect(answerText('neg', 'x')).toBe('neg')
    expect(answerText(['a', 'b'], 'x')).toBe('a, b')
    expect(answerText([], 'x')).toBe('(none)')
  })

  it('shows each span with its words and its character offsets', () => {
    const text = '\u{1f9ea} Ada met Bob'
    const spans = [{ start: 2, end: 5, label: 'PER' }, { start: 10, end: 13, label: 'PER' }]
    expect(answerText(spans, text)).toBe('PER "Ada" [2, 5), PER "Bob" [10, 13)')
  })
})
