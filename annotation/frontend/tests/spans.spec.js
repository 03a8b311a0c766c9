import { describe, expect, it } from 'vitest'
import { clashes, segments, toCodePoints, tokenize } from '../src/spans.js'

describe('tokenize', () => {
  it('gives the offsets of whitespace-separated words', () => {
    expect(tokenize('Alice  met\tBob\n')).toEqual([
      { start: 0, end: 5 },
      { start: 7, end: 10 },
      { start: 11, end: 14 },
    ])
  })

  it('gives nothing for empty, blank or missing text', () => {
    expect(tokenize('')).toEqual([])
    expect(tokenize('   \n')).toEqual([])
    expect(tokenize(null)).toEqual([])
  })
})

describe('segments', () => {
  const text = 'Alice met Bob in New York'
  const joined = (segs) => segs.map((s) => s.text).join('')

  it('is the whole text in one plain segment when nothing is marked', () => {
    expect(segments(text, [], null, null)).toEqual([
      { start: 0, end: text.length, text, span: -1, ending: [], selected: false, cursor: false },
    ])
  })

  it('cuts at every span, selection and cursor boundary and joins back to the text', () => {
    const spans = [{ start: 0, end: 5, label: 'PER' }, { start: 17, end: 25, label: 'LOC' }]
    const segs = segments(text, spans, { start: 10, end: 16 }, { start: 14, end: 16 })
    expect(joined(segs)).toBe(text)
    expect(segs.map((s) => [s.text, s.span, s.selected, s.cursor])).toEqual([
      ['Alice', 0, false, false],
      [' met ', -1, false, false],
      ['Bob ', -1, true, false],
      ['in', -1, true, true],
      [' ', -1, false, false],
      ['New York', 1, false, false],
    ])
  })

  it('names the spans ending with each segment, so their labels follow their last word', () => {
    const spans = [{ start: 0, end: 9, label: 'A' }, { start: 6, end: 9, label: 'B' }, { start: 0, end: 5, label: 'C' }]
    const segs = segments(text, spans, null, null)
    expect(segs.map((s) => [s.text, s.span, s.ending])).toEqual([
      ['Alice', 0, [2]],
      [' ', 0, []],
      ['met', 0, [0, 1]],
      [' Bob in New York', -1, []],
    ])
  })

  it('ignores boundaries outside the text', () => {
    const segs = segments('abc', [], { start: -2, end: 9 }, null)
    expect(joined(segs)).toBe('abc')
    expect(segs.every((s) => s.selected)).toBe(true)
  })
})

describe('clashes', () => {
  const taken = [{ start: 0, end: 5, label: 'PER' }]

  it('refuses an overlap unless overlaps are allowed', () => {
    const candidate = { start: 3, end: 8, label: 'LOC' }
    expect(clashes(taken, candidate, false)).toBe(true)
    expect(clashes(taken, candidate, true)).toBe(false)
  })

  it('refuses the very same span even when overlaps are allowed', () => {
    expect(clashes(taken, { start: 0, end: 5, label: 'PER' }, true)).toBe(true)
    expect(clashes(taken, { start: 0, end: 5, label: 'LOC' }, true)).toBe(false)
  })

  it('lets touching spans be', () => {
    expect(clashes(taken, { start: 5, end: 9, label: 'PER' }, false)).toBe(false)
  })
})

describe('toCodePoints', () => {
  it('counts an emoji (two UTF-16 units) as one character, as the server does', () => {
    const text = 'Dr \u{1f9ea} Acme'
    expect(text.indexOf('Acme')).toBe(6)
    expect(toCodePoints(text, 6)).toBe(5)
    expect(toCodePoints(text, 3)).toBe(3)
  })

  it('is 0 for missing text', () => {
    expect(toCodePoints(undefined, 4)).toBe(0)
  })
})
