// In-console navigation without reloading the page (app.js renders).

let renderer = () => {};

export function onNavigate(f) {
  renderer = f;
}

export function navigate(url, replace) {
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  renderer();
}
