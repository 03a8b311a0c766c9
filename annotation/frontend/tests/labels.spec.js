import { describe, expect, it } from 'vitest'
import { colourClass, cycle, inLabelOrder, toggled } from '../src/labels.js'

describe('cycle', () => {
  it('starts on the first label going down and the last going up', () => {
    expect(cycle(-1, 1, 3)).toBe(0)
    expect(cycle(-1, -1, 3)).toBe(2)
  })

  it('moves one step and wraps round at both ends', () => {
    expect(cycle(0, 1, 3)).toBe(1)
    expect(cycle(2, 1, 3)).toBe(0)
    expect(cycle(0, -1, 3)).toBe(2)
  })

  it('is -1 with nothing to choose', () => {
    expect(cycle(-1, 1, 0)).toBe(-1)
  })
})

describe('toggled', () => {
  it('adds a missing name and removes a present one, leaving the original alone', () => {
    const before = new Set(['a'])
    expect([...toggled(before, 'b')]).toEqual(['a', 'b'])
    expect([...toggled(before, 'a')]).toEqual([])
    expect([...before]).toEqual(['a'])
  })
})

describe('inLabelOrder', () => {
  it('lists the chosen names in the order of the labels, not of choosing', () => {
    expect(inLabelOrder(['sports', 'politics', 'tech'], new Set(['tech', 'sports']))).toEqual(['sports', 'tech'])
  })
})

describe('colourClass', () => {
  it('repeats eight colours and gives none for a name not in the list', () => {
    expect(colourClass(0)).toBe('lab-0')
    expect(colourClass(9)).toBe('lab-1')
    expect(colourClass(-1)).toBe('')
  })
})
