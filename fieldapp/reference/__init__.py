"""The reference: the field cards officers read on a scene, online and offline.

- `pages`: the reference pages, search and the title index (cards come from content.py);
- `content_review`: the two sign-offs of each card version, by the CIT coordinator and the clinical
  partner from their own accounts (owns `content_signoffs` and `card_versions`);
- `offline`: the installable app: manifest, service worker, precache and offline page.
"""
