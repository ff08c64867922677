// This deployment's public settings, written into the page by the server (server/web/pages.py).
const element = document.getElementById("series-config");
export const config = Object.freeze(element ? JSON.parse(element.textContent) : {});
