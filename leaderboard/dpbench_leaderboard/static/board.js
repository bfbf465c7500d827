// Click a column header of a table with class "sortable" to sort its rows (numbers numerically); no dependencies.
(function () {
  "use strict";
  function value(cell) {
    var raw = cell.getAttribute("data-sort");
    if (raw === null) { raw = cell.textContent.replace(/^=/, "").trim(); }
    var number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    table.querySelectorAll("thead th").forEach(function (header, column) {
      header.addEventListener("click", function () {
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        var ascending = header.getAttribute("data-order") !== "asc";
        rows.sort(function (a, b) {
          var x = value(a.cells[column]), y = value(b.cells[column]);
          if (x === y) { return 0; }
          return (x < y ? -1 : 1) * (ascending ? 1 : -1);
        });
        header.setAttribute("data-order", ascending ? "asc" : "desc");
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
})();
