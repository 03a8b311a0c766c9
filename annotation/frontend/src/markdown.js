// A deliberately small Markdown renderer for guidelines: everything is HTML-escaped first, then
// headings, lists, paragraphs, **bold**, *italic* and `code` are recognised. No links, no raw HTML.
function escape(s) {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

function inline(s) {
  return escape(s)
    .replace(/`([^`]+)`/g, '<code>$1</code>')
    .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
    .replace(/\*([^*]+)\*/g, '<em>$1</em>')
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
