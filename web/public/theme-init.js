// Applies the saved theme before the first paint (an external file: the page's CSP forbids inline scripts).
(function () {
  try {
    var t = localStorage.getItem('nexus.theme')
    if (t !== 'light' && t !== 'dark') t = window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'
    document.documentElement.dataset.theme = t
  } catch (e) {
    document.documentElement.dataset.theme = 'light'
  }
})()
