import { describe, expect, it } from 'vitest'
import { oauthReturnTo } from './returnTo'

describe('oauthReturnTo', () => {
  it('follows only the authorization endpoint of this origin', () => {
    expect(oauthReturnTo('?return_to=' + encodeURIComponent('/oauth/authorize?client_id=a&state=b'))).toBe('/oauth/authorize?client_id=a&state=b')
    for (const bad of ['https://evil.test/oauth/authorize?x', '//evil.test/oauth/authorize?x', '/oauth/authorize', '/admin?x', '/oauth/authorize?\\x', '/oauth/authorize/../../x?y']) {
      expect(oauthReturnTo('?return_to=' + encodeURIComponent(bad))).toBeNull()
    }
    expect(oauthReturnTo('')).toBeNull()
  })
})
