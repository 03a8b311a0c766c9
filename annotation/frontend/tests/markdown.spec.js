import { describe, expect, it } from 'vitest'
import { renderMarkdown } from '../src/markdown.js'

describe('renderMarkdown', () => {
  it('renders headings two levels down, paragraphs and lists', () => {
    const html = renderMarkdown('# Sentiment\n\nPick the\n**overall** tone.\n\n- positive: *praise*\n- negative: `meh`')
    expect(html).toBe(
      [
        '<h3>Sentiment</h3>',
        '<p>Pick the <strong>overall</strong> tone.</p>',
        '<ul><li>positive: <em>praise</em></li><li>negative: <code>meh</code></li></ul>',
      ].join('\n'),
    )
  })

  it('escapes raw HTML and makes no links', () => {
    const html = renderMarkdown('<script>alert("x")</script> [a](http://x) & more')
    expect(html).toBe('<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; [a](http://x) &amp; more</p>')
  })

  it('ends a paragraph where a list starts and a list where a paragraph starts', () => {
    expect(renderMarkdown('intro\n- one\nafter')).toBe('<p>intro</p>\n<ul><li>one</li></ul>\n<p>after</p>')
  })

  it('gives nothing for no guidelines', () => {
    expect(renderMarkdown('')).toBe('')
    expect(renderMarkdown(null)).toBe('')
  })
})
