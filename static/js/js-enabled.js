// Loaded in <head>, before the page is drawn: from here on the page is scripted, so portal.css
// folds the phone menu behind its button (without JavaScript it stays open).
document.documentElement.classList.replace("no-js", "js");
