// What both end-to-end clients report about the page they loaded: the
// same facts, read the same way, whichever library drove the browser.

// pageFacts runs in the page and returns what the tests check.
export function pageFacts() {
  return {
    title: document.title,
    innerWidth: window.innerWidth,
    innerHeight: window.innerHeight,
    language: navigator.language,
    timezone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    userAgent: navigator.userAgent,
  };
}

// bearerHeaders returns the Authorization header for DUOCHROME_TOKEN, if
// it is set.
export function bearerHeaders() {
  const token = process.env.DUOCHROME_TOKEN;
  return token ? { Authorization: `Bearer ${token}` } : {};
}
