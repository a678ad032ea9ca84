/* The launch page: a picked file fills the text area; the text is POSTed as
   {"yaml": text} and the API's validation message (one line per error) is shown
   exactly; .error-line keeps its line breaks. */
"use strict";

(() => {
  const { el, fetchJSON, detail } = sweepctl;
  let source = "pasted spec";

  function show(id, text) {
    const node = document.getElementById(id);
    node.hidden = false;
    node.replaceChildren(...(typeof text === "string" ? [text] : text));
  }

  async function submit(event) {
    event.preventDefault();
    const button = document.getElementById("launch-submit");
    document.getElementById("launch-error").hidden = true;
    document.getElementById("launch-result").hidden = true;
    button.disabled = true;
    try {
      const yaml = document.getElementById("spec-text").value;
      const result = await fetchJSON("/api/v1/sweeps", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ yaml, source }),
      });
      if (result.ok) {
        const link = el("a", { href: result.body.url, id: "new-sweep" }, result.body.name);
        show("launch-result", ["Queued sweep ", link, ` (id ${result.body.id}).`]);
      } else {
        show("launch-error", detail(result.body));
      }
    } catch (err) {
      show("launch-error", String(err));
    } finally {
      button.disabled = false;
    }
  }

  function readFile() {
    const file = this.files && this.files[0];
    if (!file) return;
    source = file.name;
    file.text().then((text) => {
      document.getElementById("spec-text").value = text;
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("launch-form").addEventListener("submit", submit);
    document.getElementById("spec-file").addEventListener("change", readFile);
    document.getElementById("spec-text").addEventListener("input", () => {
      source = "pasted spec";
    });
  });
})();
