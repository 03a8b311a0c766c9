import { describe, expect, it } from 'vitest'
import { APP_KEYS, DEFAULT_KEYS, hotkeyMap, labelKeys } from '../src/hotkeys.js'

const digits = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']

describe('labelKeys', () => {
  it('gives 1-9 then 0 in label order: on labels "0".."9" the tenth label ("9") has the key 0', () => {
    expect(labelKeys(digits)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '0'])
  })

  it('goes on with the letters the page does not use itself', () => {
    const many = Array.from({ length: 16 }, (_, i) => `L${i}`)
    expect(labelKeys(many).slice(10)).toEqual(['a', 'b', 'c', 'd', 'e', 'h'])
    for (const key of Object.keys(APP_KEYS)) expect(DEFAULT_KEYS).not.toContain(key)
  })

  it('gives no key past the last free one', () => {
    const many = Array.from({ length: DEFAULT_KEYS.length + 2 }, (_, i) => `L${i}`)
    const keys = labelKeys(many)
    expect(keys.slice(-2)).toEqual([null, null])
    expect(new Set(keys.filter(Boolean)).size).toBe(DEFAULT_KEYS.length)
  })

  it("takes the project's own keys first and gives the others the next free defaults", () => {
    expect(labelKeys(['cat', 'dog', 'bird'], { dog: '1', bird: 'B' })).toEqual(['2', '1', 'b'])
  })

  it("ignores an own key that is the page's, taken already, or not one character", () => {
    expect(labelKeys(['a', 'b', 'c', 'd'], { a: 'u', b: 'x', c: 'x', d: 'Enter' })).toEqual(['1', 'x', '2', '3'])
    expect(labelKeys(['a'], null)).toEqual(['1'])
  })
})

describe('hotkeyMap', () => {
  it("maps each label's key to its index, a letter in both cases, and skips labels without a key", () => {
    const chosen = []
    const map = hotkeyMap(['1', 'c', null, '0'], (i) => chosen.push(i))
    expect(Object.keys(map).sort()).toEqual(['0', '1', 'C', 'c'])
    map['1']()
    map.C()
    map['0']()
    expect(chosen).toEqual([0, 1, 3])
  })
})

describe('review-page keys', () => {
  it('never gives j or k (next and previous row on the review page) to a label, however many labels', () => {
    const many = Array.from({ length: 30 }, (_, i) => `L${i}`)
    const keys = labelKeys(many)
    expect(keys).not.toContain('j')
    expect(keys).not.toContain('k')
    expect(new Set(keys.filter(Boolean)).size).toBe(keys.filter(Boolean).length)
  })
})
