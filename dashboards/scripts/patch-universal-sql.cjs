// postinstall: make two DuckDB settings non-fatal in @evidence-dev/universal-sql.
//
// Evidence 40 runs `SET ieee_floating_point_ops` and `SET old_implicit_casting` when it opens
// its in-browser / in-node DuckDB. We pin @duckdb/duckdb-wasm to 1.28.0 (DuckDB 0.9.1, the last
// release with parquet built in: newer ones download the extension from the internet and
// `npm run sources` hangs offline), and DuckDB 0.9.1 does not know either setting. The patch
// wraps those two statements in try/catch. Idempotent; fails loudly if the
// statements cannot be found in a universal-sql copy that mentions them (i.e. after an upgrade).
'use strict';
const fs = require('fs');
const path = require('path');

const SETTINGS = ['ieee_floating_point_ops', 'old_implicit_casting'];
const root = path.join(__dirname, '..', 'node_modules');

function* universalSqlDirs(dir, depth = 0) {
	if (depth > 6 || !fs.existsSync(dir)) return;
	for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
		if (!entry.isDirectory()) continue;
		const full = path.join(dir, entry.name);
		if (entry.name === 'universal-sql' && path.basename(dir) === '@evidence-dev') yield full;
		else if (entry.name === 'node_modules' || entry.name.startsWith('@')) yield* universalSqlDirs(full, depth + 1);
		else if (depth > 0 && fs.existsSync(path.join(full, 'node_modules'))) {
			yield* universalSqlDirs(path.join(full, 'node_modules'), depth + 1);
		}
	}
}

let patched = 0;
let already = 0;
for (const dir of universalSqlDirs(root)) {
	for (const file of ['browser.js', 'node.js']) {
		const target = path.join(dir, 'src', 'client-duckdb', file);
		if (!fs.existsSync(target)) continue;
		let text = fs.readFileSync(target, 'utf8');
		for (const setting of SETTINGS) {
			// In node the wasm connection throws synchronously, so a try/catch (not .catch) it is.
			const wrapped = new RegExp(`try \\{ await connection\\.query\\((['"])SET ${setting}[^'"]*\\1\\); \\} catch \\{ /\\* [^*]* \\*/ \\}`);
			const bare = new RegExp(`await connection\\.query\\((['"])SET ${setting}[^'"]*\\1\\)(\\.catch\\(\\(\\) => \\{\\}\\))?;`, 'g');
			if (wrapped.test(text)) {
				already += 1;
				continue;
			}
			let found = false;
			text = text.replace(bare, (match, _q, hasCatch) => {
				found = true;
				patched += 1;
				const statement = hasCatch ? match.replace('.catch(() => {})', '') : match;
				return `try { ${statement} } catch { /* unknown to DuckDB 0.9.1: crimecast patch */ }`;
			});
			if (!found && text.includes(`SET ${setting}`)) {
				console.error(`patch-universal-sql: cannot patch "${setting}" in ${target}: layout changed`);
				process.exit(1);
			}
		}
		fs.writeFileSync(target, text);
	}
}
console.log(`patch-universal-sql: ${patched} statement(s) patched, ${already} already patched`);
