import { describe, expect, it } from 'vitest'
import { progressText, projectText } from '../src/progress.js'

const progress = (over) => ({
  done_by_me: 12,
  done_today: 3,
  left_for_me: 28,
  project_total: 400,
  project_done: 121,
  ...over,
})

describe('progressText', () => {
  it('counts what is done out of done plus left, with today', () => {
    expect(progressText(progress())).toBe('12 of 40 done, 3 today, 28 left')
  })

  it('reads sensibly before the first answer and after the last', () => {
    expect(progressText(progress({ done_by_me: 0, done_today: 0 }))).toBe('0 of 28 done, 0 today, 28 left')
    expect(progressText(progress({ left_for_me: 0 }))).toBe('12 of 12 done, 3 today, 0 left')
  })

  it('is empty until the figures arrive', () => {
    expect(progressText(null)).toBe('')
  })
})

describe('projectText', () => {
  it('gives the project share finished, rounded down', () => {
    expect(projectText(progress())).toBe('Project: 121 of 400 tasks finished (30%)')
    expect(projectText(progress({ project_done: 399 }))).toBe('Project: 399 of 400 tasks finished (99%)')
  })

  it('is empty for a project without tasks', () => {
    expect(projectText(progress({ project_total: 0, project_done: 0 }))).toBe('')
  })
})
