import { describe, expect, it } from 'vitest'
import { isTyping, shortcutName } from '../src/shortcuts.js'

const key = (k, mods = {}) => ({
  key: k,
  ...{ ctrlKey: false, altKey: false, metaKey: false, shiftKey: false, isComposing: false },
  ...mods,
})

describe('shortcutName', () => {
  it('names a plain key by its key, the space bar as Space', () => {
    expect(shortcutName(key('u'))).toBe('u')
    expect(shortcutName(key('Enter'))).toBe('Enter')
    expect(shortcutName(key(' '))).toBe('Space')
  })

  it('leaves Shift out: a shifted character is its own key, and handlers read shiftKey', () => {
    expect(shortcutName(key('?', { shiftKey: true }))).toBe('?')
    expect(shortcutName(key('ArrowRight', { shiftKey: true }))).toBe('ArrowRight')
    expect(shortcutName(key('U', { shiftKey: true }))).toBe('U')
  })

  it('folds Ctrl with a letter to lower case', () => {
    expect(shortcutName(key('z', { ctrlKey: true }))).toBe('Ctrl+z')
    expect(shortcutName(key('Z', { ctrlKey: true, shiftKey: true }))).toBe('Ctrl+z')
    expect(shortcutName(key('Enter', { ctrlKey: true }))).toBe('Ctrl+Enter')
  })

  it('gives no name with Alt or Meta held, or during IME composition', () => {
    expect(shortcutName(key('z', { altKey: true }))).toBeNull()
    expect(shortcutName(key('z', { metaKey: true, ctrlKey: true }))).toBeNull()
    expect(shortcutName(key('1', { isComposing: true }))).toBeNull()
  })
})

describe('isTyping', () => {
  it('is true in form fields and editable text', () => {
    for (const tagName of ['INPUT', 'TEXTAREA', 'SELECT']) expect(isTyping({ tagName })).toBe(true)
    expect(isTyping({ tagName: 'DIV', isContentEditable: true })).toBe(true)
  })

  it('is false elsewhere', () => {
    expect(isTyping({ tagName: 'BUTTON', isContentEditable: false })).toBe(false)
    expect(isTyping({ tagName: 'BODY' })).toBe(false)
    expect(isTyping(null)).toBe(false)
  })
})
