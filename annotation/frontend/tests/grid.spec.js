import { describe, expect, it } from 'vitest'
import { between, columnsOf, gridMove } from '../src/grid.js'

describe('gridMove', () => {
  it('moves by one across and by a row up and down', () => {
    expect(gridMove(0, 'ArrowRight', 10, 4)).toBe(1)
    expect(gridMove(5, 'ArrowLeft', 10, 4)).toBe(4)
    expect(gridMove(1, 'ArrowDown', 10, 4)).toBe(5)
    expect(gridMove(5, 'ArrowUp', 10, 4)).toBe(1)
  })

  it('stops at the edges, the short last row included', () => {
    expect(gridMove(0, 'ArrowLeft', 10, 4)).toBe(0)
    expect(gridMove(1, 'ArrowUp', 10, 4)).toBe(1)
    expect(gridMove(7, 'ArrowDown', 10, 4)).toBe(7)
    expect(gridMove(9, 'ArrowRight', 10, 4)).toBe(9)
  })

  it('is -1 on an empty grid', () => {
    expect(gridMove(0, 'ArrowRight', 0, 4)).toBe(-1)
  })
})

describe('between', () => {
  it('lists the indices from one end to the other, in order', () => {
    expect(between(5, 2)).toEqual([2, 3, 4, 5])
    expect(between(3, 3)).toEqual([3])
  })
})

describe('columnsOf', () => {
  it('counts the thumbnails on the first row', () => {
    expect(columnsOf([10, 10, 10, 90, 90])).toBe(3)
    expect(columnsOf([])).toBe(1)
  })
})
