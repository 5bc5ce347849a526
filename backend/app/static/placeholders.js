// ThumbHash placeholders: an image carrying `data-thumbhash` shows the blurred preview its
// hash decodes to (a tiny PNG data URL) until its own pixels arrive. An ES module, loaded
// after the page is parsed; HTMX's new tiles get theirs as they come in.
import { thumbHashToDataURL } from "./vendor/thumbhash-0.1.1/thumbhash.js";

function bytesOf(base64) {
  var text = atob(base64.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(base64.length / 4) * 4, "="));
  var bytes = new Uint8Array(text.length);
  for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function paint(img) {
  var hash = img.dataset.thumbhash;
  img.removeAttribute("data-thumbhash"); // once
  if (!hash || (img.complete && img.naturalWidth)) return; // already here
  var url;
  try { url = thumbHashToDataURL(bytesOf(hash)); } catch (err) { return; } // a bad hash: no placeholder
  img.style.backgroundImage = 'url("' + url + '")';
  img.classList.add("placeheld");
  img.addEventListener("load", function () {
    img.style.backgroundImage = "";
    img.classList.remove("placeheld");
  }, { once: true });
}

function paintAll(root) {
  if (root.matches && root.matches("img[data-thumbhash]")) paint(root);
  if (root.querySelectorAll) root.querySelectorAll("img[data-thumbhash]").forEach(paint);
}

paintAll(document);
document.body.addEventListener("htmx:load", function (event) { paintAll(event.detail.elt); });
