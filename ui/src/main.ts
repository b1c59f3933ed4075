// Parlor UI entry point.
const app = document.querySelector<HTMLDivElement>("#app");
if (app) app.textContent = "Parlor";
