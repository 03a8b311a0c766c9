import { describe, expect, it } from 'vitest'
import { clashes, inTextOrder, segments, snapToTokens, toCodePoints, toUtf16, tokenAt, tokenize } from '../src/spans.js'

describe('tokenize', () => {
  it('gives the offsets of whitespace-separated words', () => {
    expect(tokenize('Alice  met\tBob\n')).toEqual([
      { start: 0, end: 5 },
      { start: 7, end: 10 },
      { start: 11, end: 14 },
    ])
  })

  it('makes each punctuation sign a token of its own: "Monday." is "Monday" and "."', () => {
    const text = 'See you Monday. Bye, Ann!'
    expect(tokenize(text).map((t) => text.slice(t.start, t.end))).toEqual(['See', 'you', 'Monday', '.', 'Bye', ',', 'Ann', '!'])
  })

  it("keeps a word's inner apostrophe or hyphen, and letters of any script with their accents", () => {
    const text = "don't co-op (Zoë's) 東京, 3.5"
    expect(tokenize(text).map((t) => text.slice(t.start, t.end))).toEqual([
      "don't", 'co-op', '(', "Zoë's", ')', '東京', ',', '3', '.', '5',
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

describe('snapToTokens', () => {
  const text = 'Meet on Monday. Bye'
  const tokens = tokenize(text)

  it('widens a selection to the whole tokens it touches', () => {
    const r = snapToTokens(tokens, { start: 9, end: 11 }) // "on" of "Monday"
    expect(text.slice(r.start, r.end)).toBe('Monday')
  })

  it('leaves the full stop out unless the selection reaches it', () => {
    expect(text.slice(...Object.values(snapToTokens(tokens, { start: 8, end: 14 })))).toBe('Monday')
    expect(text.slice(...Object.values(snapToTokens(tokens, { start: 8, end: 15 })))).toBe('Monday.')
  })

  it('is null for a selection of spaces only, or none', () => {
    expect(snapToTokens(tokens, { start: 4, end: 5 })).toBeNull()
    expect(snapToTokens(tokens, null)).toBeNull()
  })
})

describe('tokenAt', () => {
  it('finds the token at or after an offset, the last one past the end', () => {
    const tokens = tokenize('ab cd')
    expect(tokenAt(tokens, 0)).toBe(0)
    expect(tokenAt(tokens, 2)).toBe(1)
    expect(tokenAt(tokens, 9)).toBe(1)
    expect(tokenAt([], 0)).toBe(-1)
  })
})

describe('inTextOrder', () => {
  it('sorts spans by start, end and label, leaving its input as it was', () => {
    const spans = [{ start: 9, end: 12, label: 'B' }, { start: 0, end: 4, label: 'B' }, { start: 0, end: 4, label: 'A' }]
    expect(inTextOrder(spans).map((s) => `${s.start}${s.label}`)).toEqual(['0A', '0B', '9B'])
    expect(spans[0].start).toBe(9)
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

describe('toUtf16', () => {
  it('turns a stored character offset back into a UTF-16 one', () => {
    const text = 'Dr \u{1f9ea} Acme'
    expect(toUtf16(text, 5)).toBe(6)
    expect(toCodePoints(text, toUtf16(text, 5))).toBe(5)
    expect(toUtf16(null, 3)).toBe(0)
  })
})
