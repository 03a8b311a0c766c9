import { describe, expect, it } from 'vitest'
import { MAX_ZOOM, clampPan, fitScale, panAround, panLimit, stepZoom } from '../src/zoom.js'

describe('fitScale', () => {
  it('scales a small image up and a large one down to fit the box whole', () => {
    expect(fitScale(28, 28, 600, 400)).toBeCloseTo(400 / 28)
    expect(fitScale(2000, 1000, 500, 500)).toBe(0.25)
  })

  it('is 1 before the sizes are known', () => {
    expect(fitScale(0, 0, 500, 500)).toBe(1)
  })
})

describe('stepZoom', () => {
  it('steps in and out, never below the fitted size or past the maximum', () => {
    expect(stepZoom(1, 1)).toBe(1.25)
    expect(stepZoom(1.25, -1)).toBe(1)
    expect(stepZoom(1, -1)).toBe(1)
    expect(stepZoom(MAX_ZOOM, 1)).toBe(MAX_ZOOM)
  })
})

describe('pan', () => {
  it('lets the image move only as far as its edge reaches the box edge', () => {
    expect(panLimit(1000, 600)).toBe(200)
    expect(panLimit(300, 600)).toBe(0)
    expect(clampPan(250, 200)).toBe(200)
    expect(clampPan(-250, 200)).toBe(-200)
  })

  it('keeps the point under the pointer in place while zooming', () => {
    // A point 100 px right of the centre, image not panned, scale 2 -> 4: the image moves 100 px left.
    expect(panAround(0, 100, 2, 4)).toBe(-100)
    expect(panAround(0, 0, 2, 4)).toBe(0)
  })
})
