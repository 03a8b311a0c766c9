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

  it('escapes raw HTML', () => {
    const html = renderMarkdown('<script>alert("x")</script> & more')
    expect(html).toBe('<p>&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more</p>')
  })

  it('renders http, https and mailto links opening safely in a new tab', () => {
    const attrs = 'target="_blank" rel="noopener noreferrer"'
    expect(renderMarkdown('See [the *style* guide](https://example.org/a_b*c?x=1&y=2).')).toBe(
      `<p>See <a href="https://example.org/a_b*c?x=1&amp;y=2" ${attrs}>the <em>style</em> guide</a>.</p>`,
    )
    expect(renderMarkdown('[web](http://x.test) [mail](mailto:lead@x.test)')).toBe(
      `<p><a href="http://x.test" ${attrs}>web</a> <a href="mailto:lead@x.test" ${attrs}>mail</a></p>`,
    )
    expect(renderMarkdown('- [list](<https://x.test/p>)')).toBe(
      `<ul><li><a href="https://x.test/p" ${attrs}>list</a></li></ul>`,
    )
  })

  it('leaves only the text of a link to any other address', () => {
    expect(renderMarkdown('[click](javascript:alert(1)) [data](data:text/html,x) [rel](/admin/)')).toBe(
      '<p>click) data rel</p>',
    )
    expect(renderMarkdown('[x](JavaScript:void) and [y]("onmouseover=alert(1))')).toBe('<p>x and y)</p>')
  })

  it('never turns an attribute quote or a tag out of a link', () => {
    const html = renderMarkdown('[a](https://x.test/"onclick="alert(1)) [<b>](https://x.test/)')
    expect(html).not.toMatch(/onclick="/)
    expect(html).not.toMatch(/<b>/)
    expect(html).toContain('href="https://x.test/&quot;onclick=&quot;alert(1"')
  })

  it('shows code as it is, links and stars included', () => {
    expect(renderMarkdown('`[a](https://x.test) **b**`')).toBe('<p><code>[a](https://x.test) **b**</code></p>')
  })

  it('ends a paragraph where a list starts and a list where a paragraph starts', () => {
    expect(renderMarkdown('intro\n- one\nafter')).toBe('<p>intro</p>\n<ul><li>one</li></ul>\n<p>after</p>')
  })

  it('gives nothing for no guidelines', () => {
    expect(renderMarkdown('')).toBe('')
    expect(renderMarkdown(null)).toBe('')
  })
})
