// Lets xterm.js's DOM renderer run under `style-src 'self'` (no 'unsafe-inline'): its runtime
// <style> elements become constructed stylesheets and setAttribute('style') becomes CSSOM.

/**
 * xterm 6 injects `<style>` elements (theme, cell dimensions, scrollbar) and sets some cell
 * colours with `setAttribute('style', …)`; a strict CSP blocks both. Constructed stylesheets
 * and `element.style.cssText` are CSSOM, which CSP allows. Install once, before creating the
 * terminal. This page creates no other <style> elements.
 */
export function installCspStyleShim(doc: Document = document): void {
  const marker = doc as Document & { __attachdCspShim?: boolean };
  if (marker.__attachdCspShim) return;
  marker.__attachdCspShim = true;

  const originalCreate = doc.createElement.bind(doc) as (tag: string, options?: ElementCreationOptions) => HTMLElement;
  const shim = (tag: string, options?: ElementCreationOptions): HTMLElement => {
    if (tag.toLowerCase() !== 'style') return originalCreate(tag, options);
    return constructedStyle(doc, originalCreate);
  };
  doc.createElement = shim as typeof doc.createElement;

  const proto = Element.prototype;
  const originalSetAttribute = proto.setAttribute;
  proto.setAttribute = function setAttribute(this: Element, name: string, value: string): void {
    if (name.toLowerCase() === 'style' && this instanceof HTMLElement) {
      this.style.cssText = value;
      return;
    }
    originalSetAttribute.call(this, name, value);
  };
}

/** A hidden stand-in element whose textContent feeds a document-adopted CSSStyleSheet. */
function constructedStyle(
  doc: Document,
  create: (tag: string, options?: ElementCreationOptions) => HTMLElement,
): HTMLElement {
  const el = create('xterm-style');
  el.hidden = true;
  const sheet = new CSSStyleSheet();
  doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
  let text = '';
  Object.defineProperty(el, 'textContent', {
    configurable: true,
    get: () => text,
    set: (value: string | null) => {
      text = value ?? '';
      sheet.replaceSync(text);
    },
  });
  const originalRemove = el.remove.bind(el);
  el.remove = () => {
    doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((s) => s !== sheet);
    originalRemove();
  };
  return el;
}
