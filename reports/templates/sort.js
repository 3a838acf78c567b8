// Click a column heading of a table.sortable to sort its rows by that column (again: the other way).
// Numbers sort as numbers (the first number in a cell: "0.912", "+3.1 dB [...]"), the rest as text.
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (heading, column) {
    heading.title = "sort by this column";
    heading.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var down = heading.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach(function (h) { h.removeAttribute("aria-sort"); });
      heading.setAttribute("aria-sort", down ? "ascending" : "descending");
      function key(row) {
        var text = (row.cells[column] || {}).textContent || "";
        var number = text.replace("\u2212", "-").match(/[-+]?\d*\.?\d+(e[-+]?\d+)?/i);
        return number ? parseFloat(number[0]) : text.trim().toLowerCase();
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (typeof x !== typeof y) { x = String(x); y = String(y); }
        return (x < y ? -1 : x > y ? 1 : 0) * (down ? 1 : -1);
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
