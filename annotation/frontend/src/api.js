// Thin fetch wrapper: session auth plus Django's CSRF header. Every call resolves to
// {ok, status, data}; a 4xx/5xx never throws, so callers can show `data.detail` and keep the user's work.
function csrfToken() {
  const hit = document.cookie.split('; ').find((c) => c.startsWith('csrftoken='))
  return hit ? decodeURIComponent(hit.split('=')[1]) : ''
}

export async function call(method, url, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } }
  if (method !== 'GET') {
    init.headers['Content-Type'] = 'application/json'
    init.headers['X-CSRFToken'] = csrfToken()
    init.body = JSON.stringify(body || {})
  }
  let res
  try {
    res = await fetch(url, init)
  } catch (err) {
    return { ok: false, status: 0, data: { detail: `network error: ${err.message}` } }
  }
  let data = null
  if (res.status !== 204) {
    const text = await res.text()
    try {
      data = text ? JSON.parse(text) : null
    } catch {
      data = { detail: `${res.status} ${res.statusText}` }
    }
  }
  if (!res.ok && (!data || typeof data !== 'object' || !data.detail)) {
    data = { detail: data && typeof data === 'object' ? JSON.stringify(data) : `${res.status} ${res.statusText}` }
  }
  return { ok: res.ok, status: res.status, data }
}

export const get = (url) => call('GET', url)
export const post = (url, body) => call('POST', url, body)
