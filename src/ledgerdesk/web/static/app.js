// Progressive enhancement for the console and the portal. Every form works without
// this file; with it, destructive buttons ask first, files can be dropped onto a reply,
// and uploads show their progress.

function confirmations() {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
}

// Files over the size limit (or past the count) are taken out of the choice before
// anything is sent, and said so; the other chosen files stay chosen.
function keepWithinLimits(input) {
  const most = Number(input.dataset.maxBytes || 0);
  const count = Number(input.dataset.maxFiles || 0);
  const zone = input.closest("[data-dropzone]");
  const said = zone && zone.querySelector("[data-file-error]");
  if (!most && !count) return;
  const kept = new DataTransfer();
  const refused = [];
  for (const file of input.files) {
    if ((most && file.size > most) || (count && kept.files.length >= count)) refused.push(file.name);
    else kept.items.add(file);
  }
  if (refused.length) input.files = kept.files;
  if (said) {
    said.hidden = refused.length === 0;
    said.textContent = refused.length
      ? `Not attached (over ${Math.round(most / 1048576)} MiB each, or more than ${count} files): ${refused.join(", ")}`
      : "";
  }
}

function listChosen(input, list) {
  keepWithinLimits(input);
  list.replaceChildren(
    ...Array.from(input.files, (file) => {
      const item = document.createElement("li");
      item.textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} KiB)`;
      return item;
    }),
  );
}

function dropzones() {
  for (const zone of document.querySelectorAll("[data-dropzone]")) {
    const input = zone.querySelector("input[type=file]");
    const list = zone.querySelector("[data-chosen]");
    input.addEventListener("change", () => listChosen(input, list));
    for (const name of ["dragenter", "dragover"]) {
      zone.addEventListener(name, (event) => {
        event.preventDefault();
        zone.classList.add("over");
      });
    }
    for (const name of ["dragleave", "drop"]) {
      zone.addEventListener(name, () => zone.classList.remove("over"));
    }
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      const files = new DataTransfer();
      for (const file of input.files) files.items.add(file);
      for (const file of event.dataTransfer.files) files.items.add(file);
      input.files = files.files;
      listChosen(input, list);
    });
  }
}

function uploads() {
  for (const form of document.querySelectorAll("form[data-upload]")) {
    const progress = form.querySelector("[data-progress]");
    form.addEventListener("submit", (event) => {
      const files = form.querySelector("input[type=file]");
      if (!files || files.files.length === 0) return; // nothing to show progress for
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      progress.hidden = false;
      const request = new XMLHttpRequest();
      request.open("POST", form.action);
      request.upload.addEventListener("progress", (e) => {
        if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
      });
      request.addEventListener("load", () => {
        // The request followed the redirect and holds the page it leads to, which
        // shows what the form did once: show that page rather than load it again.
        document.open();
        document.write(request.responseText);
        document.close();
        if (request.status < 400 && request.responseURL) {
          window.history.replaceState(null, "", request.responseURL);
        }
      });
      request.addEventListener("error", () => {
        button.disabled = false;
        progress.hidden = true;
        window.alert("The upload did not reach the server. Check the connection and try again.");
      });
      request.send(new FormData(form));
    });
  }
}

// Each cell of a list table says its column, for the phone layout (app.css).
function labelTables() {
  for (const table of document.querySelectorAll("table.list")) {
    const names = Array.from(table.querySelectorAll("thead th"), (th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      Array.from(row.children).forEach((cell, index) => {
        if (!cell.hasAttribute("colspan")) cell.dataset.label = names[index] || "";
      });
    }
    table.classList.add("labelled");
  }
}

// A refused form's summary of problems takes focus, so it is read out and in view.
function summaries() {
  const summary = document.querySelector("[data-summary]");
  if (summary) summary.focus();
}

// Live pages (the queue, a ticket's page): when the event log moves, the page's parts
// named by data-live-part are fetched again and swapped in, unless the person is in the
// middle of something in them (a chosen row, a focused control): then a note offers it.
function live() {
  const spot = document.querySelector("[data-live]");
  if (!spot || !window.EventSource || !window.fetch) return;
  const note = document.querySelector("[data-live-note]");
  const parts = spot.dataset.livePart.split(",").map((part) => part.trim());
  let source = null;
  let pending = null;
  const inside = (element) =>
    parts.some((part) => Array.from(document.querySelectorAll(part)).some((el) => el.contains(element)));
  const busy = () =>
    (document.activeElement && document.activeElement !== document.body && inside(document.activeElement)) ||
    document.querySelector(".queue tbody input[type=checkbox]:checked") !== null;

  async function refresh() {
    pending = null;
    const answer = await fetch(window.location.href, { credentials: "same-origin" });
    if (!answer.ok || answer.redirected) return;
    const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
    for (const part of parts) {
      const shown = document.querySelectorAll(part);
      const found = fresh.querySelectorAll(part);
      if (shown.length !== found.length) return window.location.reload();
      shown.forEach((element, index) => element.replaceWith(document.importNode(found[index], true)));
    }
    note.hidden = true;
    labelTables();
    const next = fresh.querySelector("[data-live]");
    if (next) listen(next.dataset.live);
  }
  function changed() {
    if (busy()) note.hidden = false;
    else if (!pending) pending = window.setTimeout(refresh, 250); // a burst: one fetch
  }
  function listen(url) {
    if (source) source.close();
    source = new EventSource(url);
    source.addEventListener("changed", changed);
    source.addEventListener("reload", changed);
    source.addEventListener("presence", (event) => showPresence(JSON.parse(event.data)));
  }
  note.querySelector("a").addEventListener("click", (event) => {
    event.preventDefault();
    refresh();
  });
  listen(spot.dataset.live);
  if (spot.dataset.presenceTo) present(spot.dataset.presenceTo);
}

// Who else is on this ticket's page, and who is writing a reply there.
function showPresence(others) {
  const line = document.querySelector("[data-presence]");
  if (!line) return;
  const said = [];
  others.forEach((other, index) => {
    if (index) said.push(", ");
    const name = document.createElement("strong");
    name.textContent = other.name;
    said.push(name);
    if (other.typing) said.push(" (writing a reply)");
  });
  line.replaceChildren(...(others.length ? ["Also here: ", ...said] : []));
}

// This page tells the server it is open (every 20 s while shown) and, at once, that a
// reply or note is being written in it (at most every 5 s).
function present(url) {
  const token = document.querySelector("input[name=csrf]");
  if (!token) return;
  let told = 0;
  let typing = false;
  const tell = () => {
    if (document.visibilityState === "hidden") return;
    told = Date.now();
    const body = new URLSearchParams({ csrf: token.value, typing: typing ? "1" : "0" });
    fetch(url, { method: "POST", body, credentials: "same-origin" }).catch(() => {});
    typing = false;
  };
  let soon = null;
  for (const box of document.querySelectorAll("#f-reply-content, #f-note-content")) {
    box.addEventListener("input", () => {
      typing = true;
      const wait = 5000 - (Date.now() - told);
      if (wait <= 0) tell();
      else if (!soon) {
        soon = window.setTimeout(() => {
          soon = null;
          tell();
        }, wait);
      }
    });
  }
  document.addEventListener("visibilitychange", tell);
  window.setInterval(tell, 20000);
  tell();
}

confirmations();
dropzones();
uploads();
labelTables();
summaries();
live();
