// A deliberately small Markdown renderer for guidelines: everything is HTML-escaped, then headings, lists,
// paragraphs, **bold**, *italic*, `code` and [links](https://…) are recognised. No raw HTML. A link opens in a
// new tab only to http, https or mailto addresses, with rel="noopener noreferrer"; any other address
// (javascript:, data:, a relative path) leaves just the link's text.
function escape(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

const SAFE_URL = /^(https?:\/\/|mailto:)/i
// `code` or [text](url) (the url without spaces, optionally in <angle brackets>), found before anything is
// escaped, so that an address's * or _ is never read as emphasis.
const CODE_OR_LINK = /`([^`]+)`|\[([^\]]+)\]\(<?([^\s)<>]+)>?\)/g

function emphasis(s) {
  return escape(s)
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/\*([^*]+)\*/g, '<em>$1</em>')
}

function inline(s) {
  let out = ''
  let at = 0
  for (const m of s.matchAll(CODE_OR_LINK)) {
    out += emphasis(s.slice(at, m.index))
    at = m.index + m[0].length
    if (m[1] !== undefined) out += `<code>${escape(m[1])}</code>`
    else if (SAFE_URL.test(m[3])) {
      out += `<a href="${escape(m[3])}" target="_blank" rel="noopener noreferrer">${emphasis(m[2])}</a>`
    } else out += emphasis(m[2])
  }
  return out + emphasis(s.slice(at))
}

export function renderMarkdown(source) {
  const out = []
  let list = null
  let para = []
  const flush = () => {
    if (para.length) out.push(`<p>${inline(para.join(' '))}</p>`)
    para = []
    if (list) out.push(`<ul>${list.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>`)
    list = null
  }
  for (const raw of (source || '').split(/\r?\n/)) {
    const line = raw.trim()
    const heading = /^(#{1,4})\s+(.*)$/.exec(line)
    const item = /^[-*]\s+(.*)$/.exec(line)
    if (!line) flush()
    else if (heading) {
      flush()
      out.push(`<h${heading[1].length + 2}>${inline(heading[2])}</h${heading[1].length + 2}>`)
    } else if (item) {
      if (para.length) { out.push(`<p>${inline(para.join(' '))}</p>`); para = [] }
      ;(list = list || []).push(item[1])
    } else {
      if (list) flush()
      para.push(line)
    }
  }
  flush()
  return out.join('\n')
}
