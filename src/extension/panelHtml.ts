/**
 * The page of a webview (the training panel, Compare): no inline script or style; the script carries a nonce,
 * styles come only from files under the webview's resource root. No `vscode` here, so the webview test serves the
 * very same page.
 */
import { randomBytes } from 'node:crypto';

export function panelHtml(script: string, style: string, cspSource: string, title = 'LoRA Training'): string {
  const nonce = randomBytes(16).toString('base64');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${panelCsp(cspSource, nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>${title}</title>
</head>
<body>
<div id="app"></div>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
}

/** styles from files only (no 'unsafe-inline': scripts may still set element.style, which CSP allows) */
export function panelCsp(cspSource: string, nonce: string): string {
  return `default-src 'none'; style-src ${cspSource}; font-src ${cspSource}; img-src ${cspSource} data:; script-src 'nonce-${nonce}';`;
}
