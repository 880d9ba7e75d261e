// A recording's page: the transcript beside the translation. Lights the word (and row)
// being spoken while the audio plays, seeks when a word or a time is clicked, starts at the
// row a search hit opened, and refreshes the section while the job is still making it.
// Everything shown was rendered by the server; this script adds no text of its own.
(function () {
  "use strict";
  const player = document.getElementById("player");
  let section = document.getElementById("transcript");
  if (!section) return;
  let words = [];
  let rows = [];
  let litWord = null;
  let litRow = null;

  function index() {
    words = Array.from(section.querySelectorAll(".w")).map((el) => ({
      el,
      s: parseFloat(el.dataset.s),
      e: parseFloat(el.dataset.e),
    }));
    rows = Array.from(section.querySelectorAll("tr[data-s]")).map((el) => ({
      el,
      s: parseFloat(el.dataset.s),
    }));
    litWord = null;
    litRow = null;
  }

  function light(now) {
    let word = null;
    for (const w of words) {
      if (w.s <= now && now < w.e) { word = w.el; break; }
      if (w.s > now) break;
    }
    if (word !== litWord) {
      if (litWord) litWord.classList.remove("now");
      if (word) word.classList.add("now");
      litWord = word;
    }
    let row = null;
    for (const r of rows) {
      if (r.s <= now) row = r.el; else break;
    }
    if (row !== litRow) {
      if (litRow) litRow.classList.remove("playing");
      if (row) row.classList.add("playing");
      litRow = row;
    }
  }

  function seek(t) {
    if (!player || !isFinite(t)) return;
    player.currentTime = t;
    light(t);
    const playing = player.play();
    if (playing) playing.catch(() => {});
  }

  document.addEventListener("click", (e) => {
    const target = e.target.closest("#transcript .w, #transcript .seek");
    if (!target) return;
    seek(parseFloat(target.dataset.s ?? target.dataset.t));
  });
  if (player) {
    player.addEventListener("timeupdate", () => light(player.currentTime));
    player.addEventListener("seeked", () => light(player.currentTime));
    const start = parseFloat(section.dataset.seek);
    if (isFinite(start)) {
      const go = () => { player.currentTime = start; light(start); };
      if (player.readyState >= 1) go();
      else player.addEventListener("loadedmetadata", go, { once: true });
      const hit = section.querySelector("tr.hit");
      if (hit) hit.scrollIntoView({ block: "center" });
    }
  }
  index();

  async function refresh() {
    if (section.dataset.running !== "1") return;
    try {
      const r = await fetch(section.dataset.refresh, { credentials: "same-origin" });
      if (r.ok) {
        const html = await r.text();
        const holder = document.createElement("div");
        holder.innerHTML = html;
        const next = holder.querySelector("#transcript");
        if (next) {
          section.replaceWith(next);
          section = next;
          index();
          if (player) light(player.currentTime);
        }
      }
    } catch (_) {
      // The next attempt tries again.
    }
    setTimeout(refresh, parseInt(section.dataset.every, 10) || 3000);
  }
  setTimeout(refresh, parseInt(section.dataset.every, 10) || 3000);
})();
