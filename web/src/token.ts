/**
 * The admin token: taken from the URL fragment (`/#token=…`, never sent to the server), kept in
 * this tab's sessionStorage, and removed from the address bar so it does not end up in history,
 * bookmarks or screenshots.
 */
const KEY = 'geo-sfu.adminToken';

export function initialToken(): string | null {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromHash = params.get('token');
  if (fromHash) {
    sessionStorage.setItem(KEY, fromHash);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', `${location.pathname}${location.search}${rest ? `#${rest}` : ''}`);
  }
  return sessionStorage.getItem(KEY);
}

export function promptToken(): string | null {
  const value = window.prompt('Admin token (GEO_SFU_ADMIN_TOKEN; npm start prints it)')?.trim();
  if (!value) return null;
  sessionStorage.setItem(KEY, value);
  return value;
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
